"""Where models compute: the runtime (device and precision policy), quantization, adaptive chunking."""
