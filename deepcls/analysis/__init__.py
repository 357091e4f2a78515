"""Reading the store: results tables, measures of one run, the ledger of conclusions, the plan."""
