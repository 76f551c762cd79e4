"""gmjax.targets."""
