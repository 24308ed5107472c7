"""Presets of the generative families: DCGANs (task "gan") and autoencoders / VAEs (task "autoencoder").

GANs use Adam with beta1 0.5 and lr 2e-4 (Radford et al., 2015); the discriminator and generator
share one optimiser (see core.models.gan). Sizes are chosen so the offline presets give
recognisable samples within minutes on a laptop CPU.
"""

_GAN_OPTIM = {"optimizer": "adam", "lr": 2e-4, "beta1": 0.5, "batch_size": 64}

PRESETS = {
    "shapes-dcgan": (
        "DCGAN on generated 32x32 coloured shapes; offline, about 7 minutes on a 2-core CPU",
        {"task": "gan", "data": {"name": "shapes", "num_samples": 4000},
         "model": {"name": "dcgan", "options": {"latent_dim": 64, "width": 32}},
         "optim": {**_GAN_OPTIM, "epochs": 40},
         "task_options": {"sample_every": 100}, "log_every": 10},
    ),
    "mnist-dcgan": (
        "DCGAN on MNIST digits at 28x28 (downloaded on first use); best on a GPU",
        {"task": "gan", "data": {"name": "mnist"},
         "model": {"name": "dcgan", "options": {"latent_dim": 100, "width": 64}},
         "optim": {**_GAN_OPTIM, "batch_size": 128, "epochs": 10},
         "task_options": {"sample_every": 200}, "log_every": 20},
    ),
    "digits-dcgan": (
        "DCGAN on the 8x8 digits enlarged to 28x28; offline, about two minutes on a CPU",
        {"task": "gan", "data": {"name": "digits", "image_size": 28},
         "model": {"name": "dcgan", "options": {"latent_dim": 32, "width": 32}},
         "optim": {**_GAN_OPTIM, "epochs": 30},
         "task_options": {"sample_every": 100}, "log_every": 10},
    ),
    "digits-autoencoder": (
        "Convolutional autoencoder with a 2-D code on the 8x8 digits; offline, seconds on a CPU",
        {"task": "autoencoder", "data": {"name": "digits"},
         "model": {"name": "conv_autoencoder", "options": {"latent_dim": 2, "width": 16, "hidden": 128}},
         "optim": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64, "epochs": 40},
         "task_options": {"loss": "bce", "sample_every": 100}, "log_every": 10},
    ),
    "digits-vae": (
        "Variational autoencoder with a 2-D code on the 8x8 digits; offline, seconds on a CPU",
        {"task": "autoencoder", "data": {"name": "digits"},
         "model": {"name": "conv_vae", "options": {"latent_dim": 2, "width": 16, "hidden": 128}},
         "optim": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64, "epochs": 40},
         "task_options": {"loss": "bce", "beta": 1.0, "sample_every": 100}, "log_every": 10},
    ),
}
