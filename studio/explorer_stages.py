"""The latent explorer's controls for models that draw in stages (a stage selector) or from a description
(a text box): LAPGAN, StackGAN, Composite GAN, GRAN. Mixed into studio.explorer.ExplorerPanel."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit

from engine.latent import ALL_STAGES, default_point


def stage_names(sampler) -> list:
    """The stages a staged model draws (one sample drawn on the worker thread), or none."""
    if not hasattr(sampler.algorithm, "draw"):
        return []
    sampler.generate(default_point(sampler).latent(sampler).as_dict())
    return [label for label, _ in sampler.algorithm.last_stages]


class StageControls:
    """Needs the panel's controls_layout, point and redraw()."""

    def _add_stage_controls(self, sampler, row: int) -> None:
        """A description box for a text-conditioned model, a stage selector for a staged one."""
        grid = self.controls_layout
        if getattr(sampler.algorithm, "text_conditioned", False):
            self.text_box = QLineEdit()
            self.text_box.setObjectName("description")
            self.text_box.setPlaceholderText("type a description, e.g. an ankle boot with a high heel")
            self.text_box.textChanged.connect(self._text_changed)
            grid.addWidget(QLabel("description"), row, 0)
            grid.addWidget(self.text_box, row, 1, 1, 4)
            row += 1
        names = getattr(sampler, "stage_names", [])
        if names:
            self.stage_box = QComboBox()
            self.stage_box.setObjectName("stage")
            self.stage_box.addItem("the images", "")
            self.stage_box.addItem("every stage", ALL_STAGES)
            for name in names:
                self.stage_box.addItem(name, name)
            self.stage_box.currentIndexChanged.connect(self._stage_changed)
            grid.addWidget(QLabel("stage"), row, 0)
            grid.addWidget(self.stage_box, row, 1, 1, 4)

    def _text_changed(self, text: str) -> None:
        self.point.text = text.strip()
        self.redraw()

    def _stage_changed(self, index: int) -> None:
        self.point.stage = self.stage_box.itemData(index)
        self.redraw()

