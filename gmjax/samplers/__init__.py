"""gmjax.samplers."""
