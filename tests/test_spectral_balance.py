"""The spectral balance: committed frames brought to the styles' long-term power per band."""
import numpy as np

from engine.analysis.spectral import SpectralConfig, stft
from engine.params import ParamStore
from engine.synthesis import band_movement as bm
from engine.synthesis import spectral_balance as sb
from engine.synthesis.phase import StreamingPhase
from engine.synthesis.runtime import BlockStepper
from engine.synthesis.spectral_balance import MAX_BALANCE_DB, SpectralBalance
from engine.synthesis.step_graph import live_config
from engine.synthesis.styles import StyleLibrary
from tests.played import played
from tests.signals import SR, bursts_and_drone

SPEC = SpectralConfig()
#: Block duration of the unit tests' streams, seconds (4 frames).
BLOCK = 4 * SPEC.hop / SPEC.sample_rate


def _play(balance: SpectralBalance | None, level: np.ndarray, target: np.ndarray, blocks: int,
          phase: StreamingPhase | None = None) -> np.ndarray:
    """``blocks`` blocks of 4 noise frames of per-bin magnitude ``level`` through the real streaming
    phase (a new one unless ``phase`` goes on), under the balance's gains (none: 0 dB); the samples."""
    rng = np.random.default_rng(0)
    if phase is None:
        phase = StreamingPhase(n_fft=SPEC.n_fft, hop=SPEC.hop, look_ahead=1, iterations=4)
        phase.prepare()
    out = []
    for _ in range(blocks):
        gains = np.ones(SPEC.n_bins) if balance is None else balance.gains(target)
        samples = phase.process(level[:, None] * rng.rayleigh(np.sqrt(0.5), (SPEC.n_bins, 4)) * gains[:, None])
        if balance is not None:
            balance.observe(samples)
        out.append(samples)
    return np.concatenate(out)


def _bands_db(emap: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 10 * np.log10(emap @ np.mean(np.abs(stft(y)) ** 2, axis=1) + 1e-30)


def test_a_band_played_too_quiet_is_brought_to_the_styles_power():
    """Frames whose mean power is 1 in every bin but 6 dB less in band 5, through the real phase: the
    played bands come out below 1 (the phase's overlap-add of frames that are not a consistent
    spectrogram loses power) and band 5 further; balanced towards 1 everywhere they come within 1.5 dB."""
    emap = SPEC.envelope_map().astype(np.float64)
    level = np.ones(SPEC.n_bins)
    level[emap[5] > 0] = 10 ** (-6 / 20)
    target = np.ones(SPEC.n_bins)
    wanted = 10 * np.log10(emap @ target)
    plain = _bands_db(emap, _play(None, level, target, 200)[SR:]) - wanted
    balanced = _bands_db(emap, _play(SpectralBalance(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK),
                                     level, target, 800)[20 * SR:]) - wanted  # the prior (1.5 s) spent
    print("band errors, dB: plain", np.round(plain, 1), "balanced", np.round(balanced, 1))
    assert plain[5] < -4 and np.max(np.abs(plain)) > 3
    assert np.all(np.abs(balanced[1:]) < 1.5)  # band 0 holds a few bins near DC


def test_a_band_that_comes_in_bursts_is_not_lifted_while_it_rests(monkeypatch):
    """Band 5 rests 20 dB under the style's mean power for 4 s, then bursts for 1 s at +7 dB, so that
    its mean is the style's (birdsong's chirps, docs/EXPERIMENTS.md section 32). An estimate that starts
    from nothing sees only the rest, lifts the band by the full 6 dB and plays the burst that much too
    loud; one that starts from the style's power (PRIOR_SECONDS) lifts it less."""
    emap = SPEC.envelope_map().astype(np.float64)
    band = emap[5] > 0
    target = np.ones(SPEC.n_bins)
    rest, burst = np.ones(SPEC.n_bins), np.ones(SPEC.n_bins)
    rest[band], burst[band] = 10 ** (-20 / 20), 10 ** (6.95 / 20)
    rest_blocks, burst_blocks = int(round(4.0 / BLOCK)), int(round(1.0 / BLOCK))

    def burst_db(balance: SpectralBalance | None) -> float:
        phase = StreamingPhase(n_fft=SPEC.n_fft, hop=SPEC.hop, look_ahead=1, iterations=4)
        phase.prepare()
        _play(balance, rest, target, rest_blocks, phase)
        return float(_bands_db(emap, _play(balance, burst, target, burst_blocks, phase)[SPEC.n_fft:])[5])

    plain = burst_db(None)
    excess = {}
    for prior in (0.0, sb.PRIOR_SECONDS):
        monkeypatch.setattr(sb, "PRIOR_SECONDS", prior)
        excess[prior] = burst_db(SpectralBalance(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK)) - plain
    print("the burst over its own frames, dB, by the estimate's prior (s):", {k: round(v, 1) for k, v in excess.items()})
    assert excess[0.0] > 3.0  # the failure this guards against, reproduced (3.5 dB; the noise is seeded)
    assert excess[sb.PRIOR_SECONDS] < excess[0.0] - 0.7  # 2.5 dB


def test_a_morph_to_a_louder_band_is_not_lifted_by_the_old_styles_shortfall():
    """The engine plays band 5 6 dB short of style A; the blend moves to style B, 20 dB louder there,
    and the frames follow at once. The estimate moves with the target, so band 5 plays at B's power
    straight away instead of B's power plus A's 6 dB correction."""
    emap = SPEC.envelope_map().astype(np.float64)
    band = emap[5] > 0
    level_a, target_a = np.ones(SPEC.n_bins), np.ones(SPEC.n_bins)
    level_a[band] = 10 ** (-6 / 20)
    level_b, target_b = level_a.copy(), target_a.copy()
    level_b[band] *= 10.0  # +20 dB in the frames ...
    target_b[band] *= 100.0  # ... and in the style
    balance = SpectralBalance(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK)
    phase = StreamingPhase(n_fft=SPEC.n_fft, hop=SPEC.hop, look_ahead=1, iterations=4)
    phase.prepare()
    _play(balance, level_a, target_a, 300, phase)
    after = _play(balance, level_b, target_b, 20, phase)[2 * SPEC.n_fft:]  # the first second after the move
    error = _bands_db(emap, after)[5] - 10 * np.log10(emap[5] @ target_b)
    print(f"band 5 in the second after the morph: {error:+.1f} dB from style B")
    assert abs(error) < 2.0


def test_a_band_the_engine_cannot_fill_is_lifted_no_further_than_the_bound():
    emap = SPEC.envelope_map().astype(np.float64)
    balance = SpectralBalance(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK)
    assert np.all(balance.gains(np.ones(SPEC.n_bins)) == 1.0)  # nothing played yet: 0 dB
    _play(balance, np.full(SPEC.n_bins, 0.01), np.ones(SPEC.n_bins), 300)  # everything 40 dB low, 14 s
    balance.gains(np.ones(SPEC.n_bins))
    assert np.allclose(balance.gains_db, MAX_BALANCE_DB)


def test_silent_bands_are_left_alone_and_prepare_forgets():
    emap = SPEC.envelope_map().astype(np.float64)
    balance = SpectralBalance(emap, n_fft=SPEC.n_fft, hop=SPEC.hop, block_seconds=BLOCK)
    target = np.full(SPEC.n_bins, 4.0)
    target[emap[0] > 0] = 0.0  # the style is silent in band 0
    _play(balance, np.ones(SPEC.n_bins), target, 300)
    gains = balance.gains(target)
    assert balance.gains_db[0] == 0.0 and np.all(np.isfinite(gains)) and balance.gains_db[8] > 3.0
    balance.prepare()
    assert np.all(balance.gains(target) == 1.0)


def test_the_engine_plays_each_band_at_the_styles_power(monkeypatch):
    """Bursts over a drone: the bursts' band is loud a fifth of the time, and log-magnitude frames
    drawn, optimised and phased around it play less of its power than the style (5-7 dB above 1.5 kHz;
    EXPERIMENTS 23). With the band movement held (it gives the bursts back some of their power too), the
    balance switched off (its bound at 0 dB) leaves the bands about 0.8 dB off the style's on average, and
    switched on 0.5 dB; with both, 0.9 dB. Before the history refresh (EXPERIMENTS 48) the same seconds gave 0.8,
    0.3 and 0.6 dB: the optimiser moves the bursts' level for a few seconds after each refresh, and the balance,
    which follows 10 s of play, evens out what a window of 6 s still holds."""
    style = bursts_and_drone(8.0)
    config = live_config()
    emap = config.spectral.envelope_map().astype(np.float64)
    library = StyleLibrary(config)
    library.add_audio(style, "bursts")
    stepper = BlockStepper(config)
    want = _bands_db(emap, style.astype(np.float64))
    heard = want > want.max() - 40
    errors = {}
    for movement, bound in ((1.0, 0.0), (1.0, sb.MAX_BALANCE_DB), (bm.MAX_MOVEMENT_GAIN, sb.MAX_BALANCE_DB)):
        monkeypatch.setattr(sb, "MAX_BALANCE_DB", bound)
        monkeypatch.setattr(bm, "MAX_MOVEMENT_GAIN", movement)
        params = ParamStore()
        params.set("gain", 1.0)
        audio = played(library, params, stepper, 8.0)[0]
        errors[movement, bound] = float(np.mean(np.abs(_bands_db(emap, audio[2 * SR:].astype(np.float64)) - want)[heard]))
    print(f"mean band level error, dB (movement, balance): {errors}")
    balanced = errors[1.0, sb.MAX_BALANCE_DB]
    assert balanced < 1.0 and balanced < 0.7 * errors[1.0, 0.0]
    assert errors[bm.MAX_MOVEMENT_GAIN, sb.MAX_BALANCE_DB] < 1.0
