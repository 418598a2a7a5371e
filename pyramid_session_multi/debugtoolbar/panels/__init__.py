"""Where 0.4 kept its panel; kept so that its import paths still work."""
