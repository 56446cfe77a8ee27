"""The render pass's stages: read, sync, super-resolution and masks, blend, upscale, restoration."""
