"""Reinforcement-learning presets: policy gradients on gymnasium's classic-control tasks (CPU, minutes)."""

PRESETS = {
    "cartpole-reinforce": (
        "REINFORCE (Williams, 1992) with the mean return as baseline on CartPole; 500 is a perfect episode. "
        "A few minutes on a CPU",
        {"task": "rl", "data": {"name": "CartPole-v1"},
         "model": {"name": "mlp_policy", "options": {"hidden": 64, "layers": 2}},
         "task_options": {"episodes_per_update": 8, "updates_per_epoch": 10, "gamma": 0.99, "entropy_coef": 0.0},
         "optim": {"optimizer": "adam", "lr": 5e-3, "epochs": 20, "grad_clip": 1.0},
         "device": "cpu", "log_every": 5}),
    "cartpole-actor-critic": (
        "Actor-critic with a learned value baseline and GAE on CartPole; a few minutes on a CPU",
        {"task": "rl", "data": {"name": "CartPole-v1"},
         "model": {"name": "actor_critic", "options": {"hidden": 64, "layers": 2}},
         "task_options": {"episodes_per_update": 8, "updates_per_epoch": 10, "gamma": 0.99, "gae_lambda": 0.95,
                          "entropy_coef": 0.01, "value_coef": 0.5},
         "optim": {"optimizer": "adam", "lr": 5e-3, "epochs": 20, "grad_clip": 1.0},
         "device": "cpu", "log_every": 5}),
    "acrobot-actor-critic": (
        "Actor-critic on Acrobot: swing the tip above the bar; -500 never gets there, about -80 is good",
        {"task": "rl", "data": {"name": "Acrobot-v1"},
         "model": {"name": "actor_critic", "options": {"hidden": 64, "layers": 2}},
         "task_options": {"episodes_per_update": 8, "updates_per_epoch": 10, "gamma": 0.99, "gae_lambda": 0.95,
                          "entropy_coef": 0.01, "value_coef": 0.5},
         "optim": {"optimizer": "adam", "lr": 3e-3, "epochs": 20, "grad_clip": 1.0},
         "device": "cpu", "log_every": 5}),
}
