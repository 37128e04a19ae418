"""Money: the ledger (balances, reservations, suite payments, withdrawals) and bonuses.
Every movement is atomic against the balance it checks."""
