"""Delivery: destinations (files, REST, SQL staging), their policies, and the registry they live on."""
