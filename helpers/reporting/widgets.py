"""An ipywidgets explorer: pick a test clip, a model and a condition; see and hear it.

Shows the spectrogram image, the attacked image, the blurred attacked image, the detector's
scores for each, and an audio player for the clip. Everything comes from the caches the
notebooks wrote (no attack is re-run). Headless (papermill) it renders one static view, so the
executed notebook still shows an example and never waits for a person.
"""

from __future__ import annotations

from pathlib import Path

import torch
from helpers.evaluation.attack_loop import load_attack
from helpers.experiments.stages import (AdversarialStage, BlurConfig, PixleStage, SmoothingStage, load_detector, load_prepared,
                            read_stage)


class Explorer:
    def __init__(self, profile: str):
        self.profile = profile
        self.prep = load_prepared(profile)
        pix = read_stage(profile, PixleStage, required=False)
        smooth = read_stage(profile, SmoothingStage, required=False)
        at = read_stage(profile, AdversarialStage, required=False)
        self.subset = torch.tensor(pix.subset if pix else [], dtype=torch.long)
        x_all, y_all = self.prep.xy("test")
        self.x, self.y = x_all[self.subset], y_all[self.subset]
        self.trials = [self.prep.sets["test"].trials[i] for i in self.subset.tolist()]
        self.blur = (smooth.blur_config() if smooth else BlurConfig()).make(0)
        self.sources: dict[tuple[str, str], tuple[str, Path]] = {}   # (model, condition) -> (kind, adv folder)
        for stage, kind, label, field_ in ((pix, "baseline", "baseline under Pixle", "adv_cache"),
                                           (smooth, "baseline", "smoothing, adaptive Pixle", "adaptive_adv_cache"),
                                           (at, "adversarial", "adversarial training under Pixle", "adv_cache"),
                                           (at, "adversarial", "combined, adaptive Pixle", "adaptive_adv_cache")):
            for arch, d in (getattr(stage, field_) if stage else {}).items():
                self.sources[(arch, label)] = (kind, stage.path(d))
        self._models: dict[tuple[str, str], torch.nn.Module] = {}

    @property
    def models(self) -> list[str]:
        return sorted({m for m, _ in self.sources})

    def conditions(self, model: str) -> list[str]:
        return [c for m, c in self.sources if m == model]

    def _model(self, arch: str, kind: str):
        if (arch, kind) not in self._models:
            self._models[(arch, kind)] = load_detector(self.profile, arch, kind, self.prep)  # type: ignore[arg-type]
        return self._models[(arch, kind)]

    def view(self, index: int, model: str, condition: str) -> dict:
        """Images and scores for one clip (what the widget draws), as data."""
        kind, folder = self.sources[(model, condition)]
        adv_all = load_attack(folder, len(self.y)).adv
        net = self._model(model, kind)
        x, adv = self.x[index:index + 1], adv_all[index:index + 1]
        blurred = self.blur.reseed(index)(adv)
        with torch.inference_mode():
            probs = {name: torch.softmax(net(img), 1)[0].tolist() for name, img in
                     (("original", x), ("attacked", adv), ("attacked + blur", blurred))}
        trial = self.trials[index]
        path = self.prep.table.set_index("trial").loc[trial, "path"]
        return {"trial": trial, "label": ("bonafide", "spoof")[int(self.y[index])], "images": {
            "original": x[0], "attacked": adv[0], "attacked + blur": blurred[0]}, "probs": probs, "path": path}

    def render(self, index: int, model: str, condition: str) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import Audio, display

        from helpers.data.audio import load_audio
        from helpers.reporting.figures import show_image

        v = self.view(index, model, condition)
        fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
        for ax, (name, img) in zip(axes, v["images"].items()):
            p = v["probs"][name]
            show_image(ax, img, f"{name}\nP(bonafide)={p[0]:.2f}")
        fig.suptitle(f"{v['trial']} ({v['label']}) · {model} · {condition}", fontsize=10)
        fig.tight_layout()
        plt.show()
        display(Audio(load_audio(v["path"])[0], rate=16000))

    def show(self) -> None:
        """The interactive widget, plus one static view so a headless run shows an example."""
        from IPython.display import display

        if not self.sources or len(self.subset) == 0:
            print("nothing to explore yet: run notebooks 02-04 for this profile")
            return
        model = self.models[0]
        condition = self.conditions(model)[0]
        try:
            import ipywidgets as w

            clip = w.IntSlider(0, 0, len(self.subset) - 1, description="clip")
            mdl = w.Dropdown(options=self.models, value=model, description="model")
            cond = w.Dropdown(options=self.conditions(model), value=condition, description="condition")

            def on_model(change):
                cond.options = self.conditions(change["new"])

            mdl.observe(on_model, names="value")
            out = w.interactive_output(lambda i, m, c: self.render(i, m, c) if c in self.conditions(m) else None,
                                       {"i": clip, "m": mdl, "c": cond})
            display(w.VBox([w.HBox([clip, mdl, cond]), out]))
        except ImportError:
            pass
        self.render(0, model, condition)
