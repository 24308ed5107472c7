"""Exporting a GAN (core.tasks.export_spec.ExportSpec): only its generator leaves the lab, noise z in, an image
in [-1, 1] out. There is no data to check it on: it is checked on seeded standard-normal noise, as it draws."""

from __future__ import annotations

from core.tasks.export_spec import ExportSpec


def export_spec(run_model) -> ExportSpec:
    model = run_model.model
    latent, channels, size = int(model.latent_dim), int(model.channels), int(model.image_size)
    interface = {
        "input": {"name": "z", "dtype": "float32", "shape": ["N", latent],
                  "meaning": "standard normal noise, one vector per image"},
        "output": {"name": "image", "dtype": "float32", "shape": ["N", channels, size, size],
                   "meaning": "pixels in [-1, 1]: (x + 1) / 2 * 255 gives 8-bit values; " +
                              ("grey" if channels == 1 else "RGB")},
    }

    def noise(n: int):
        return model.sample_noise(n, seed=0).cpu(), "random", "checked on seeded standard-normal noise"

    return ExportSpec(describe="The generator of a GAN", part=model.generator, inputs=noise, input_name="z",
                      output_name="image", interface=interface, argmax_check=False,
                      rebuild=lambda fresh: fresh.generator)
