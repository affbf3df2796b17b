"""The loop's NaN guard: after a step, check the losses the family declares (every step on CPU, on report
steps elsewhere) and the weights (on report steps), and act by train.on_nan: pause for someone to answer
(the window), roll back to the last good checkpoint and train on, or stop. Headless, a NaN never waits:
auto rolls back, and the same NaN coming back at the same step after a roll back stops the run."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from engine import events as ev
from engine.checkpoint import checkpoint_step


class NanGuard:
    """Mixed into engine.loop.Trainer (it uses the trainer's step, config, declaration, emit and nets)."""

    def _finite_check(self) -> bool:
        """Pause on NaN/Inf: the sync is free on CPU; on a GPU it happens on report steps only."""
        if self.group is not None and not self.group.leader:
            return True  # rank 0 decides; a roll back or a stop reaches the others at the next step
        if self.device.type != "cpu" and (self.step % self.config.train.report_every):
            return True
        bad = [name for name in self.declaration.losses if name in self._last
               and not math.isfinite(float(self._last[name]))]  # one sync a loss: float() of a tensor
        if not bad and self.step % self.config.train.report_every == 0 and not self._weights_finite():
            bad = ["the weights"]
        if not bad:
            return True
        where = " and ".join(self.declaration.losses.get(b, b) for b in bad)
        policy = self.config.train.on_nan
        if policy == "auto":
            policy = "pause" if self.interactive else "rollback"
        if policy == "pause" and self.interactive:
            self.paused = True
            self.pending_steps = 0
            text = (f"NaN or Inf in {where} at step {self.step}; training is paused — lower a learning rate "
                    f"or roll back to the last good checkpoint.")
            self.emit(ev.Warning(text))
            self.emit(ev.Paused(self.step, reason=text))
            return False
        good = self.last_good_checkpoint
        if policy in ("rollback", "pause") and good is not None and Path(good).is_file():
            back_to = checkpoint_step(good)
            if self._nan_rollbacks.get(back_to) == self.step:  # the same NaN again: rolling back cannot help
                return self._stop_for_nan(f"NaN or Inf in {where} at step {self.step} again after rolling back to "
                                          f"step {back_to}; training stopped — lower a learning rate and resume from "
                                          f"{good}.")
            self._nan_rollbacks[back_to] = self.step
            self.emit(ev.Warning(f"NaN or Inf in {where} at step {self.step}; rolled back to the checkpoint of step "
                                 f"{back_to} and training on."))
            self._rollback()
            return False
        return self._stop_for_nan(f"NaN or Inf in {where} at step {self.step}; training stopped (train.on_nan = "
                                  f"{self.config.train.on_nan!r}{', and no checkpoint to roll back to' if policy != 'stop' else ''}).")

    def _stop_for_nan(self, text: str) -> bool:
        self.emit(ev.Warning(text))
        self.stop_requested = True
        self._nan_stop = "nan"
        return False

    def _weights_finite(self) -> bool:
        """One sync for all the weights: a norm is finite when every weight is (and below 1e19 or so)."""
        params = [p for net in self.nets.values() for p in net.parameters()]
        return not params or bool(torch.stack(torch._foreach_norm(params)).isfinite().all())

