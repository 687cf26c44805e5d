"""What the pages state: the profile banner and the warning for experiments stuck at R^2 ~ 0."""
from specvit_core.report import plateau_warning, profile_banner


def test_small_profiles_are_labelled_as_not_the_papers():
    assert "not the paper's" in profile_banner("quick")
    assert "not the paper's" not in profile_banner("paper")


def test_plateau_warning_only_when_no_run_learned():
    assert plateau_warning([0.01, -0.2, float("nan")], "the seeds").startswith("> **No run of the seeds")
    assert "0.010" in plateau_warning([0.01, -0.2], "x")
    assert plateau_warning([0.01, 0.3], "the seeds") == ""  # one run learned: the comparison means something
    assert plateau_warning([float("nan")], "x") != ""  # every run diverged
