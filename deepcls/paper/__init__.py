"""The reference report as data: its tables, its conclusions, the profiles' grids of RunConfigs."""
