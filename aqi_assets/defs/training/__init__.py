"""Training: the training window, the three model assets, their gates and promotions."""
