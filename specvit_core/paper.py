"""Every number quoted from the paper, each with its table or section: the one place the book compares against.

Nothing here is used to compute a result. Chapters and tests show these values *beside* what the code measured,
so that a reader sees both; no model, noise level or template was adjusted to reproduce them.
"""
from __future__ import annotations

#: Table 13 and appendix J: median per-pixel SNR over the Table 2 conditions, 12 x 900 s, by i-band magnitude.
SNR_BY_MAG = {18.0: 87.4, 20.0: 24.0, 21.5: 7.1, 22.0: 4.6, 22.5: 3.0, 23.0: 1.9}

#: Draft section 5.4: the median 3D (T_eff, log g, [M/H]) R^2 ceiling over the grid, by i-band magnitude.
CEILING_3D = {18.0: 0.9994, 20.0: 0.9906, 21.5: 0.8914, 22.0: 0.7396, 22.5: 0.3658, 23.0: 0.0}
#: Table 13: the median 5D ceiling (also marginalized over [alpha/M] and [C/M]), by i-band magnitude.
CEILING_5D = {20.0: 0.989, 21.5: 0.874, 22.0: 0.698, 22.5: 0.265}
#: Appendix J.3: the Schur decay factor rho, the fraction of log g information kept after marginalization.
SCHUR_DECAY = {"3D": 0.69, "5D": 0.58}

#: Table 3 (and section 3.5 for ConvStem+LSTM, 4.61M): trainable parameters of each paper-size architecture;
#: the sliding-window SpecViT of Table 15 has SpecViT's budget.
PARAMS = {"specvit": 4.8e6, "specvit_sw": 4.8e6, "convstem_vit": 4.9e6, "overlap_vit": 4.8e6, "bilstm": 4.2e6, "convstem_lstm": 4.61e6, "lstmformer": 4.8e6, "resnet18_1d": 4.9e6, "deep_cnn": 4.7e6}

#: Table 3: test-set log g R^2, MAE and sigma_robust (dex) at N = 2e5 and ~4.8M parameters (None: not given).
TABLE3 = {
    "convstem_lstm": dict(r2=0.729, mae=0.431, sigma_robust=0.429),
    "lstmformer": dict(r2=0.718, mae=0.441, sigma_robust=0.445),
    "bilstm": dict(r2=0.728, mae=0.434, sigma_robust=0.429),
    "convstem_vit": dict(r2=0.716, mae=0.440, sigma_robust=0.435),
    "overlap_vit": dict(r2=0.715, mae=0.445, sigma_robust=0.446),
    "specvit": dict(r2=0.709, mae=0.449, sigma_robust=0.449),
    "resnet18_1d": dict(r2=0.687, mae=0.485, sigma_robust=0.520),
    "deep_cnn": dict(r2=0.640, mae=0.534, sigma_robust=0.602),
    "lightgbm": dict(r2=0.614, mae=0.560, sigma_robust=None),
    "ridge": dict(r2=0.50, mae=0.662, sigma_robust=None),
    "template": dict(r2=0.415, mae=0.67, sigma_robust=None),
}

#: Table 4 (section 5.1.5): the mag-19 test set (SNR ~ 21, 1,000 spectra) after fine-tuning the mag-20.5 checkpoints
#: on 2e5 mag-19 spectra; R^2, MAE and sigma_robust (dex). The paper trained no from-scratch twin.
TABLE4 = {
    "bilstm": dict(r2=0.952, mae=0.156, sigma_robust=0.116),
    "convstem_lstm": dict(r2=0.949, mae=0.156, sigma_robust=0.089),
}

#: Table 9: SpecViT trained on 1e6 spectra, on the 10k test set (interval and standard error by a 1,000-resample
#: bootstrap); RMSE and sigma_robust in dex.
TABLE9 = dict(r2=0.711, r2_ci=(0.699, 0.723), r2_se=0.0062, mae=0.442, sigma_robust=0.435, rmse=0.64, best_epoch=128,
              n=10_000, n_boot=1000)

#: Table 10: test R^2 against the training-set size N (a model absent from a row: not given at that N). Its
#: LightGBM and Ridge at N = 1e6 are Table 3's values.
TABLE10 = {
    50_000: dict(specvit=0.434, lightgbm=0.488, ridge=0.442),
    100_000: dict(specvit=0.596, lightgbm=0.553, ridge=0.475),
    200_000: dict(specvit=0.709, bilstm=0.728, convstem_lstm=0.729, lstmformer=0.718, lightgbm=0.547, ridge=0.474),
    500_000: dict(specvit=0.709, bilstm=0.737, lightgbm=0.574, ridge=0.490),
    1_000_000: dict(specvit=0.711, bilstm=0.743, convstem_lstm=0.737, lstmformer=0.729, lightgbm=0.614, ridge=0.50),
}

#: Table 12: SpecViT and the BiLSTM with their own ("native") and the other family's Table 1 configuration, keyed
#: like :func:`specvit_core.benchmark.cross_configuration_runs` labels them; R^2, MAE, sigma_robust (dex).
TABLE12 = {
    ("specvit", "native"): dict(r2=0.709, mae=0.449, sigma_robust=0.449),
    ("specvit", "recurrent config"): dict(r2=0.702, mae=0.456, sigma_robust=0.462),
    ("bilstm", "native"): dict(r2=0.728, mae=0.434, sigma_robust=0.429),
    ("bilstm", "transformer config"): dict(r2=-5.36, mae=2.91, sigma_robust=4.29),
}

#: Section 3.5: the hybrid ConvStem+LSTM's parameters by component (ConvStem, BiLSTM, 5-layer ViT), keyed by the
#: component names of ``models.inspect.component_params`` (``to_tokens``, ``bridge``, ``encoder``).
CONVSTEM_LSTM_PARAMS = {"to_tokens": 130e3, "bridge": 395e3, "encoder": 4.09e6}

#: Table 13: test R^2 of SpecViT and LightGBM in bins of i-band magnitude (N = 2e5).
TABLE13_R2 = {"specvit": {20.0: 0.90, 21.5: 0.80, 22.0: 0.68, 22.5: 0.52},
              "lightgbm": {20.0: 0.87, 21.5: 0.74, 22.0: 0.60, 22.5: 0.42}}

#: Section 5.2.1: the stellar types of the APOGEE test set (N = 1,000): 14.3% giants (log g < 2.5), 23.4%
#: subgiants, 62.3% dwarfs (log g > 4.0).
APOGEE_TEST_MIX = {"giant": 0.143, "subgiant": 0.234, "dwarf": 0.623}

#: Table 7 (= Table 17, Experiment A): the APOGEE DR17 test set after BOSZ pre-training and APOGEE fine-tuning
#: (LightGBM trained on APOGEE only); sigma_robust, R^2, MAE in dex.
TABLE7 = {
    "bilstm": dict(sigma_robust=0.066, r2=0.953, mae=0.100),
    "specvit": dict(sigma_robust=0.067, r2=0.954, mae=0.102),
    "convstem_lstm": dict(sigma_robust=0.078, r2=0.951, mae=0.114),
    "lightgbm": dict(sigma_robust=0.111, r2=0.953, mae=0.122),
}

#: Table 8: APOGEE test set by stellar type: MAE, sigma_robust and its bootstrap 95% CI (dex).
TABLE8 = {
    ("bilstm", "giant"): dict(mae=0.185, sigma_robust=0.167, ci=(0.138, 0.202)),
    ("specvit", "giant"): dict(mae=0.146, sigma_robust=0.123, ci=(0.098, 0.156)),
    ("convstem_lstm", "giant"): dict(mae=0.159, sigma_robust=0.146, ci=(0.117, 0.197)),
    ("bilstm", "subgiant"): dict(mae=0.167, sigma_robust=0.171, ci=(0.146, 0.199)),
    ("specvit", "subgiant"): dict(mae=0.198, sigma_robust=0.225, ci=(0.189, 0.265)),
    ("convstem_lstm", "subgiant"): dict(mae=0.180, sigma_robust=0.153, ci=(0.132, 0.190)),
    ("bilstm", "dwarf"): dict(mae=0.056, sigma_robust=0.031, ci=(0.027, 0.037)),
    ("specvit", "dwarf"): dict(mae=0.055, sigma_robust=0.029, ci=(0.026, 0.034)),
    ("convstem_lstm", "dwarf"): dict(mae=0.078, sigma_robust=0.039, ci=(0.033, 0.045)),
}

#: Table 16 (appendix E): DESI-50k test set (N = 5,000); MAE (dex) and R^2.
TABLE16 = {
    "specvit": dict(mae=0.196, r2=0.577),
    "lightgbm": dict(mae=0.217, r2=0.530),
    "ridge": dict(mae=0.296, r2=0.174),
}

#: Table 17 (appendix F): APOGEE test set by transfer chain; sigma_robust, R^2 (MAE where given).
TABLE17 = {
    "A: SpecViT (BOSZ -> APOGEE)": dict(sigma_robust=0.067, r2=0.954, mae=0.102),
    "B: SpecViT (BOSZ -> DESI-360k -> APOGEE)": dict(sigma_robust=0.175, r2=0.882, mae=0.183),
    "C: SpecViT (BOSZ mag 19-21 -> DESI-50k -> APOGEE)": dict(sigma_robust=0.14, r2=0.93, mae=None),
    "C: SpecViT (BOSZ mag 20.5-22.5 -> DESI-50k -> APOGEE)": dict(sigma_robust=0.15, r2=0.93, mae=None),
    "LightGBM (APOGEE only)": dict(sigma_robust=0.111, r2=0.953, mae=0.122),
    "DESI pipeline": dict(sigma_robust=0.40, r2=0.80, mae=None),
}
