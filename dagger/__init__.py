"""DAgger lab: dataset aggregation (Ross, Gordon & Bagnell 2011) on MuJoCo tasks."""
