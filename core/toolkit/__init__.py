"""What you do with a trained run: export it (`core.toolkit.export`), and the other tools of issue 11 as they
come (attack, explain, LoRA, compress, distill). Each tool reads a finished run through the one checkpoint loader
(core.tasks.checkpoints) and stores what it makes under the run's own folder, so it shows up again when the run is
reopened."""
