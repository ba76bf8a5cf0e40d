"""From a forecast to a decision: the significance gate, strikes, premiums, expected payoff, prediction records."""
