"""What every app shares: config, CLI, training, export, tuning."""
