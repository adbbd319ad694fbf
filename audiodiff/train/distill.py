"""The distillation task: a student U-Net trained on its teacher's predictions (`kind: distill`).

The student is a diffusion checkpoint like any other, built from the teacher's config with the
recipe's `model` / `data` / `sampling` overrides; its `student` section names the teacher, the
method and the steps it was distilled for. Everything around the step (data, EMA, previews,
resume, torchrun) is the diffusion task's and the trainer's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiodiff.audio import stft
from audiodiff.config import (
    DiffusionRunConfig,
    DistillRunConfig,
    SamplingConfig,
    StudentConfig,
    TrainConfig,
    from_dict,
    to_dict,
)
from audiodiff.diffusion.adversarial import SpaceDiscriminator, discriminator_loss, student_sample
from audiodiff.diffusion.distill import GUIDANCE
from audiodiff.diffusion.objective import OBJECTIVES
from audiodiff.diffusion.samplers import guided
from audiodiff.metrics.distribution import coverage_metrics, within_spread
from audiodiff.models.diffusion import DiffusionModel
from audiodiff.models.distillation import DistillStep, distill_method
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.errors import TrainingError
from audiodiff.train.init import InitError, load_source_weights
from audiodiff.train.trainer import StepContext, adamw

__all__ = ["DistillTask", "student_config"]

CRITIC_WINS_BELOW, CRITIC_PATIENCE = 0.01, 200  # a discriminator loss under this, this many steps running
# the collapse watch: at each preview, recall of this many student samples against as many real
# clips, beside the teacher's (DDIM, TEACHER_STEPS) on the same noise and conditions
WATCH_CLIPS, WATCH_K, WATCH_BANDS, TEACHER_STEPS, COLLAPSE_SHARE = 48, 5, 16, 16, 0.5
WARNINGS_KEPT = 20  # the newest warnings the checkpoint's config keeps


def space_features(x: torch.Tensor, bands: int = WATCH_BANDS) -> torch.Tensor:
    """A clip's summary in the model's own space, for nearest-neighbour recall: per channel and
    frequency band (`bands` averaged groups), the mean and the spread over time. Mel and latent
    clips `[B, C, F, T]` are read as they are; a waveform `[B, C, T]` through its log-magnitude
    spectrum. Returns `[B, 2 * C * bands]`."""
    x = x.float()
    if x.dim() == 3:
        x = torch.log(stft(x, 256, 64).abs() + 1e-5)
    pooled = F.adaptive_avg_pool2d(x, (min(bands, x.shape[2]), x.shape[3]))
    return torch.cat([pooled.mean(-1), pooled.std(-1)], dim=1).flatten(1)


def student_config(teacher: DiffusionRunConfig, run: DistillRunConfig) -> DiffusionRunConfig:
    """The student's run config: the teacher's, the recipe's overrides, a guidance input for
    guidance distillation, the `student` record and the step count it samples with."""
    method = distill_method(run.distill.method)
    data = to_dict(teacher)
    composed = {name: to_dict(SamplingConfig())[name] for name in ("guide", "rest_guidance", "guidance_interval")}
    data["sampling"].update(
        composed
    )  # students learn plain guidance: the teacher's guide= and interval do not carry over
    for section in ("data", "model", "sampling"):
        data[section].update(getattr(run, section))
    data["train"] = to_dict(run.train)
    guidance_range = teacher.student.guidance_range if teacher.student else None
    if run.distill.drop_prob is not None:  # one probability for every condition; the guidance scale is never dropped
        data["conditioning"]["drop_prob"] = run.distill.drop_prob
        data["conditioning"]["drop"] = {name: p for name, p in data["conditioning"]["drop"].items() if name == GUIDANCE}
    if method.guidance_input:
        guidance_range = [float(v) for v in run.distill.guidance_range]
        data["conditioning"]["numbers"][GUIDANCE] = guidance_range
        data["conditioning"]["drop"][GUIDANCE] = 0.0
    steps = run.distill.student_steps if method.fixed_steps else run.sampling.get("steps", teacher.sampling.steps)
    if method.sampler is not None:
        data["sampling"] = {**data["sampling"], "sampler": run.sampling.get("sampler", method.sampler), "steps": steps}
    if not method.guidance_input and guidance_range is None:
        # guidance baked in: the conditional prediction is already guided, one call per step
        data["sampling"]["guidance"] = run.sampling.get("guidance", 1.0)
    base = (teacher.student.base or teacher.student.teacher) if teacher.student else run.distill.teacher
    data["student"] = to_dict(StudentConfig(run.distill.teacher, base, method.name, steps, guidance_range))
    return from_dict(DiffusionRunConfig, data)


class DistillTask(DiffusionTask):
    def __init__(self, config: DistillRunConfig, verbose: bool = True):
        self.run, self.verbose = config, verbose
        self.method = distill_method(config.distill.method)
        self.teacher = DiffusionModel.from_pretrained(config.distill.teacher)
        if self.method.fixed_steps and config.distill.student_steps < 1:
            raise TrainingError(f"distill.student_steps={config.distill.student_steps}: must be at least 1")
        if config.distill.drop_prob is not None and not 0 <= config.distill.drop_prob < 1:
            raise TrainingError(
                f"distill.drop_prob={config.distill.drop_prob}: a probability in [0, 1), or null for the teacher's"
            )
        if config.distill.intervals < 1:
            raise TrainingError(
                f"distill.intervals={config.distill.intervals}: the consistency grid needs at least 1 interval"
            )
        super().__init__(student_config(self.teacher.config, config), verbose, self.teacher.autoencoder)

    def build(self, device: torch.device, cfg: TrainConfig) -> None:
        super().build(device, cfg)
        teacher = self.teacher.model.to(device).eval().requires_grad_(False)
        self.teacher_model = OBJECTIVES[self.teacher.config.diffusion.objective].as_model(teacher)
        if not self.method.guidance_input and GUIDANCE not in teacher.conditioner.conditions:
            # a teacher without a guidance input: distil its guided prediction at one fixed scale
            self.teacher_model = guided(self.teacher_model, self.run.distill.guidance)
        if self.run.distill.init_from_teacher:
            self._init_from(teacher)
        self.discriminator = None
        if self.method.discriminator:  # a critic on the model's own space, trained beside the student
            channels = self.config.model.in_channels
            self.discriminator = SpaceDiscriminator(self.config.model.dims, channels).to(device)
            self.d_optimizer = adamw(self.discriminator.parameters(), cfg)
            for group in self.d_optimizer.param_groups:
                group["lr_scale"] = self.run.distill.discriminator_lr / cfg.lr
            self.modules["discriminator"] = self.discriminator
            self.optimizers["discriminator"] = self.d_optimizer
            self.d_net = self.discriminator
            self.critic_wins = 0
        self.events: list[dict] = []  # log records for the trainer (warnings, the collapse watch)
        self.warnings: list[dict] = []
        self.watch_set = None
        self.watch_groups: list = []  # what each watch clip asks for (its label, or its caption)
        self.teacher_features = None
        self.first_recall = None  # the student's recall at this process's first watch
        self.watch = None  # the newest collapse-watch figures

    def wrap(self, wrap_fn) -> None:
        super().wrap(wrap_fn)
        if self.discriminator is not None:
            self.d_net = wrap_fn(self.discriminator)

    def _init_from(self, teacher: nn.Module) -> None:
        """Copy the teacher's weights (`train.init`'s mapping); a new guidance input starts at
        zero, so the student starts as the teacher's conditional prediction."""
        try:
            load_source_weights(
                self.model,
                teacher,
                str(self.run.distill.teacher),
                self.verbose,
                setting="distill.init_from_teacher",
                fix="set distill.init_from_teacher=false to train the student from scratch",
            )
        except InitError as error:
            raise TrainingError(str(error)) from None
        if GUIDANCE in self.model.conditioner.conditions and GUIDANCE not in teacher.conditioner.conditions:
            last = self.model.conditioner.conditions[GUIDANCE].mlp[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]:
        x = batch["x"].to(self.device, non_blocking=True)
        cond = self.model.conditioner.drop(batch, ctx.generator, self.device)
        cond.pop(GUIDANCE, None)
        student = OBJECTIVES[self.config.diffusion.objective].as_model(self.net)
        shift = self.config.diffusion.shift
        guidance_range = self.config.student.guidance_range
        if not self.method.guidance_input and guidance_range is not None:
            low, high = guidance_range  # the student of a guidance student keeps its scale input
            cond[GUIDANCE] = (low + (high - low) * torch.rand(x.shape[0], generator=ctx.generator)).to(self.device)
        logged = {}
        fake = None
        if self.discriminator is not None:
            noise = torch.randn(x.shape, generator=ctx.generator).to(x)
            with ctx.autocast():
                fake = student_sample(student, noise, cond, self.config.student.steps, shift)
                loss_d = discriminator_loss(self.d_net, x, fake)
            ctx.backward(loss_d, self.discriminator, self.d_optimizer)
            logged["discriminator"] = float(loss_d.detach())
            self._watch_critic(logged["discriminator"], ctx)
        step = DistillStep(
            student,
            self.teacher_model,
            x,
            cond,
            self.run.distill,
            self.config.student.steps,
            shift,
            ctx.generator,
            fake,
            self.d_net if self.discriminator is not None else None,
        )
        with ctx.autocast():
            loss = self.method.loss(step)
        ctx.backward(loss, self.model, self.optimizer)
        return {"loss": float(loss.detach()), **logged}

    def _watch_critic(self, loss_d: float, ctx: StepContext) -> None:
        """Say so when the critic wins outright (its loss near zero) for CRITIC_PATIENCE steps: the
        student then learns nothing from it (lower distill.discriminator_lr, or raise distill_weight)."""
        self.critic_wins = self.critic_wins + 1 if loss_d < CRITIC_WINS_BELOW else 0
        if self.critic_wins and self.critic_wins % CRITIC_PATIENCE == 0:
            self._warn(
                f"the discriminator has won outright for {self.critic_wins} steps (loss {loss_d:.4f}); "
                "lower distill.discriminator_lr or raise distill.distill_weight",
                ctx.step + 1,
            )

    def _warn(self, message: str, step: int, **figures) -> None:
        """A warning for the log (the trainer prints it) and for the checkpoint's config."""
        event = {"warning": message, **figures}
        self.events.append(event)
        self.warnings = [*self.warnings, {"step": step, **event}][-WARNINGS_KEPT:]

    def preview(self, module: nn.Module, out_dir, step: int) -> None:
        super().preview(module, out_dir, step)
        if self.discriminator is not None:
            self.watch_collapse(module, step)

    @torch.no_grad()
    def watch_collapse(self, module: nn.Module, step: int) -> dict | None:
        """The student's few-step samples beside the teacher's, on the same noise and conditions
        (features: `space_features`, scaled by the real clips'): their recall against real clips,
        and their spread (mean distance between samples asked the same thing). A student under
        COLLAPSE_SHARE of the teacher's spread, or under COLLAPSE_SHARE of its recall and below its
        own recall at the first watch (a few-step start from the teacher's weights is blurred, not
        collapsed), is collapsing onto a few outputs (the spread catches one output per label,
        which recall can miss): warned in the log and the checkpoint's config. Returns the figures
        (None where the data cannot be indexed)."""
        if not hasattr(self.dataset, "__getitem__") or len(self.dataset) <= WATCH_K:
            return None
        real, cond = self._watch_set()
        groups = self.watch_groups
        noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(4321)).to(real)
        shift = self.config.diffusion.shift
        if self.teacher_features is None:  # the teacher does not change: once per process
            self.teacher_features = self._sample_features(self.teacher_model, noise, cond, TEACHER_STEPS, shift)
        student = OBJECTIVES[self.config.diffusion.objective].as_model(module.eval())
        student_features = self._sample_features(student, noise, cond, self.config.student.steps, shift)
        real_features = space_features(real)
        mean, spread = real_features.mean(0), real_features.std(0) + 1e-6
        scaled = [((f - mean) / spread).cpu().numpy() for f in (real_features, self.teacher_features, student_features)]
        teacher_recall = coverage_metrics(scaled[0], scaled[1], WATCH_K)["recall"]
        figures = coverage_metrics(scaled[0], scaled[2], WATCH_K)
        spreads = [within_spread(features, groups) for features in scaled[1:]]
        record = {"watch_recall": figures["recall"], "watch_precision": figures["precision"],
                  "teacher_recall": teacher_recall, "watch_spread": spreads[1] / max(spreads[0], 1e-9)}  # fmt: skip
        self.events.append(record)
        self.watch = {"step": step, **record}
        self.first_recall = figures["recall"] if self.first_recall is None else self.first_recall
        falling = figures["recall"] < min(COLLAPSE_SHARE * teacher_recall, self.first_recall)
        if falling or record["watch_spread"] < COLLAPSE_SHARE:
            self._warn(
                f"the student's samples are collapsing: recall {figures['recall']:.2f} against the teacher's "
                f"{teacher_recall:.2f}, spread {record['watch_spread']:.2f}x the teacher's, on {len(real)} "
                "preview clips; lower train.lr or distill.discriminator_lr, raise distill.distill_weight, "
                "or keep an earlier checkpoint",
                step,
                **record,
            )
        return record

    def _watch_set(self) -> tuple[torch.Tensor, dict]:
        """WATCH_CLIPS real clips spread over the data (fixed crops), and their labels (captions for
        a model without labels; every condition for a model with neither), the rest left null.
        With every condition given, a student that collapses where a user asks for a label alone
        still looks diverse: its variety would come from the captions."""
        if self.watch_set is None:
            count = min(WATCH_CLIPS, len(self.dataset))
            rows = [self.dataset[(index * len(self.dataset) // count, 1234)] for index in range(count)]
            batch = self.collate(rows)
            conditions = self.model.conditioner.conditions
            asked = next((name for name in ("label", "text") if name in conditions), None)
            cond = {  # as a user asks (and the previews do): the label (else the caption) alone
                name: c.keep(batch[name], torch.full((count,), asked in (None, name)), self.device)
                for name, c in conditions.items()
            }
            self.watch_set = (batch["x"].to(self.device), cond)
            values = batch[asked] if asked is not None else [0] * count
            self.watch_groups = [v.item() if isinstance(v, torch.Tensor) else v for v in values]
        return self.watch_set

    def _sample_features(self, model, noise: torch.Tensor, cond: dict, steps: int, shift: float) -> torch.Tensor:
        cond = dict(cond)
        if GUIDANCE in cond or GUIDANCE in self.teacher.model.conditioner.conditions:
            cond[GUIDANCE] = torch.full((noise.shape[0],), self.run.distill.guidance, device=noise.device)
        return space_features(student_sample(model, noise, cond, steps, shift))

    def export_config(self) -> dict:
        data = super().export_config()
        data["source"] = {"distill": to_dict(self.run.distill)}
        if self.discriminator is not None:  # the run's health: what a model card reports
            data["source"]["health"] = {"warnings": self.warnings, "watch": self.watch}
        return data
