"""Providers among the goodies, under the class paths the original gave them."""
