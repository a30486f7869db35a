"""Floor 1: what every layer may use and that knows no source and no Dagster."""
