"""Workflows: graphs of computations, each step taking the results of the steps before it or waiting for them."""
