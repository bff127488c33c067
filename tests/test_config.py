"""helpers.config: typed sections that check themselves, one adapter from UPPER_CASE parameters, a leaf of choices."""

from __future__ import annotations

import ast
import dataclasses

import pytest

from helpers.config import choices as C
from helpers.config.params import CHOICES, check
from helpers.config.profiles import BASE, PROFILES
from helpers.config.sections import (SECTIONS, CertifiedSection, DataSection, ParameterError, PixleSection, SmoothingSection,
                                     TrainSection, from_upper, param, upper_kwargs)
from helpers.paths import ROOT


def test_every_profile_builds_every_section():
    for name, params in PROFILES.items():
        for cls in SECTIONS:
            sec = cls.from_params(params)
            for upper, field_name in cls.param_names().items():
                value = params[upper]
                assert getattr(sec, field_name) == (tuple(value) if isinstance(value, list) else value), (name, upper)


@pytest.mark.parametrize("cls,name,bad,says", [
    (DataSection, "FEATURES", "thesis_rgb", "not one of ['thesis_rgb32', 'logspec'"),
    (DataSection, "CODECS", [], "CODECS is empty; choose from"),
    (DataSection, "BONAFIDE_SHARE", 1.5, "must be a number > 0 and < 1, or None"),
    (DataSection, "SPLIT", [0.5, 0.5, 0.5], "three fractions"),
    (TrainSection, "EPOCHS", 0, "must be a whole number >= 1"),
    (TrainSection, "EPOCHS", 2.5, "must be a whole number >= 1"),
    (TrainSection, "LR", -0.1, "must be a number > 0"),
    (TrainSection, "MODELS", ["resnet18", "resnet34"], "'resnet34' is not one of ['resnet18', 'resnet50']"),
    (PixleSection, "PIXLE_X_DIM", [0.2, 0.1], "min <= max"),
    (PixleSection, "PIXLE_RESTARTS", True, "must be a whole number >= 1"),
    (SmoothingSection, "BLUR_KERNEL", 4, "odd kernel size"),
    (SmoothingSection, "BLUR_SIGMA", [5.0, 0.1], "a range [low, high]"),
    (TrainSection, "SELECT", "best", "'best' is not one of ['last', 'val_eer']"),
    (TrainSection, "AUGMENT", "shift+blur", "unknown: ['blur']"),
    (CertifiedSection, "CERT_ALPHA", 1.5, "must be a number > 0 and < 1"),
    (CertifiedSection, "CERT_INIT", "imagenet", "not one of ['baseline', 'scratch']"),
    (CertifiedSection, "CERT_PIXLE", [1], "two whole numbers >= 1"),
    (CertifiedSection, "CERT_SWEEP_MODEL", "resnet34", "'resnet34' is not one of ['resnet18', 'resnet50']"),
])
def test_a_section_refuses_a_bad_value_at_construction_naming_it(cls, name, bad, says):
    with pytest.raises(ParameterError) as e:
        cls.from_params({name: bad})
    assert f"{name} = " in str(e.value) or f"{name} is" in str(e.value)
    assert says in str(e.value)
    with pytest.raises(ParameterError):        # the same through check(), as run_all.py and the notebooks call it
        check({name: bad})


def test_check_reports_every_problem_at_once_and_passes_unknown_names():
    with pytest.raises(ParameterError) as e:
        check({"FEATURES": "x", "EPOCHS": 0, "BLUR_PER": "batches", "SOME_NEW_NAME": object()})
    assert len(e.value.problems) == 3 and all(n in str(e.value) for n in ("FEATURES", "EPOCHS", "BLUR_PER"))
    check({"SOME_NEW_NAME": 1})


def test_the_eq_augmentation_is_refused_before_any_work_unless_the_features_are_lfcc():
    with pytest.raises(ParameterError, match="'eq' needs FEATURES 'lfcc'"):
        check({"AUGMENT": "shift+eq", "FEATURES": "thesis_rgb32"})
    check({"AUGMENT": "shift+eq", "FEATURES": "lfcc"})
    with pytest.raises(ParameterError, match="'lfcc_cmn' is already blind to a fixed per-band gain"):
        check({"AUGMENT": "eq", "FEATURES": "lfcc_cmn"})    # eq on normalised cepstra would undo the normalisation
    check({"AUGMENT": "eq"})                # 01's namespace alone: its features come from 00's record


def test_sections_are_frozen_and_default_to_the_base_profile():
    sec = TrainSection()
    assert sec.epochs == BASE["EPOCHS"] and sec.models == tuple(BASE["MODELS"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        sec.epochs = 3  # type: ignore[misc]
    hash(DataSection())                          # lists became tuples


def test_one_generic_adapter_maps_fields_to_upper_case_parameters():
    @dataclasses.dataclass(frozen=True)
    class Recipe:                                # a module's own config: no adapter written for it
        epochs: int = 1
        feature_size: int = 32
        schedule: str = "constant"
        not_a_parameter: str = "kept"

    got = from_upper(Recipe, {"EPOCHS": 7, "FEATURE_SIZE": 64, "LR_SCHEDULE": "cosine"}, rename={"schedule": "LR_SCHEDULE"})
    assert got == Recipe(7, 64, "cosine", "kept")
    assert upper_kwargs(Recipe, {"AT_EPOCHS": 2}, prefix="AT_") == {"epochs": 2}
    assert upper_kwargs(Recipe, {"EPOCHS": [1, 2]}) == {"epochs": (1, 2)}          # lists become tuples
    with pytest.raises(KeyError, match="BASE"):
        param("NO_SUCH_PARAMETER")                  # a checked parameter must exist in the profiles first


def test_choices_match_the_modules_that_implement_them():
    from helpers.attacks.pixle import MAPPINGS
    from helpers.data.codecs import DF_CODECS
    from helpers.data.features import FEATURES
    from helpers.data.speech_sources import SOURCES
    from helpers.models.augment import AUGMENTS
    from helpers.models.detectors import ARCHS

    assert C.AUGMENTS == tuple(AUGMENTS)
    assert (C.ARCHS, C.FEATURES, C.DF_CODECS, C.SPEECH_SOURCES, C.PIXLE_MAPPINGS) == \
        (tuple(ARCHS), tuple(FEATURES), tuple(DF_CODECS), tuple(SOURCES), tuple(MAPPINGS))
    assert CHOICES["MODELS"] == C.ARCHS and CHOICES["PIXLE_MAPPING"] == C.PIXLE_MAPPINGS


def test_config_imports_no_module_it_checks():
    """helpers.config is the bottom layer: its modules import only each other (and the standard library)."""
    for p in (ROOT / "helpers" / "config").glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for m in mods:
                assert not m.startswith("helpers") or m.startswith("helpers.config"), f"{p.name} imports {m}"


def test_stage_adapters_build_the_same_configs_from_sections():
    """The notebooks' configs come from the one adapter; every profile's values arrive unchanged."""
    from helpers.experiments import stages

    for params in PROFILES.values():
        t = stages.train_config(params)
        assert (t.epochs, t.lr, t.schedule, t.warmup_epochs, t.max_batches) == (
            params["EPOCHS"], params["LR"], params["LR_SCHEDULE"], params["WARMUP_EPOCHS"], params["MAX_BATCHES"])
        at = stages.train_config(params, prefix="AT_")
        assert (at.epochs, at.lr, at.schedule) == (params["AT_EPOCHS"], params["AT_LR"], "constant")
        a = stages.attack_config(params)
        assert (a.restarts, a.max_iterations, a.x_dimensions, a.pixel_mapping, a.seed, a.target_batch) == (
            params["PIXLE_RESTARTS"], params["PIXLE_ITERATIONS"], tuple(params["PIXLE_X_DIM"]), params["PIXLE_MAPPING"],
            params["SEED"], params["PIXLE_TARGET_BATCH"])
        d = stages.data_params(params)
        assert (d.split, d.split_by, d.codecs, d.speech_dir) == (tuple(params["SPLIT"]), params["SPLIT_BY"],
                                                                 tuple(params["CODECS"]), None)
    with pytest.raises(ParameterError, match="PIXLE_MAPPING"):
        stages.attack_config({**PROFILES["smoke"], "PIXLE_MAPPING": "rand"})
