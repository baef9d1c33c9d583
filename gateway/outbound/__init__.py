"""Outbound: canonical documents written as X12 through declarative outbound maps (pure).

The public API is :mod:`gateway.mapping.outbound`; the format is described in
``docs/outbound-maps.md``. The modules: :mod:`.functions` (formatting
functions), :mod:`.paths` (canonical field paths, checked against the
models), :mod:`.nodes` (compiled maps and their evaluation), :mod:`.compiler`
(YAML to nodes, placed in the set definition), :mod:`.library` (every
outbound map of a deployment) and :mod:`.render` (document + partner profile
→ a validated interchange). Reading the files is :mod:`gateway.outbound_loader`'s job.
"""
