"""Knowledge-distillation presets: a small student learns from a finished classifier of the same data set.

A preset cannot know its teacher's run id: `task_options.teacher` is left empty, and the run is refused until it
names one (the Train form offers the finished runs that fit; the CLI message says which preset trains one, from
TEACHER_PRESETS).
"""

# data set -> the classification preset that trains a good teacher for it
TEACHER_PRESETS = {"digits": "digits-cnn", "shapes": "shapes-cnn"}

PRESETS = {
    "digits-distill": (
        "A small MLP (32 wide) on the 8x8 digits, taught by a finished digits-cnn run (Hinton et al., 2015); "
        "offline, seconds on a CPU",
        {"task": "distillation", "task_options": {"teacher": "", "temperature": 4.0, "alpha": 0.9},
         "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": 32},
         # 30 epochs: the soft targets teach more slowly than the labels; at 10 the student trails its baseline
         "optim": {"optimizer": "adam", "lr": 3e-3, "epochs": 30, "batch_size": 64}}),
    "shapes-distill": (
        "A small MLP (64 wide) on generated coloured shapes, taught by a finished shapes-cnn run; offline, fast demo",
        {"task": "distillation", "task_options": {"teacher": "", "temperature": 4.0, "alpha": 0.9},
         "data": {"name": "shapes", "num_samples": 4000}, "model": {"name": "mlp", "hidden": 64},
         "optim": {"optimizer": "adam", "lr": 1e-3, "epochs": 5, "batch_size": 64}}),
}
