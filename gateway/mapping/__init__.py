"""The declarative map language: YAML maps compiled against the definitions, evaluated purely.

See ``docs/maps.md`` for the language. The modules: :mod:`.marked` (YAML
with line:col marks), :mod:`.problems` (load errors, all at once),
:mod:`.functions` (the named-function registry), :mod:`.compiler` (map
files to checked node trees, ``extends`` merging), :mod:`.x12scope`,
:mod:`.xmlscope`, :mod:`.csvscope` (what paths are evaluated against),
:mod:`.evaluate` (nodes + scope → canonical document) and
:mod:`.library` (every map of a deployment, looked up by source).
"""
