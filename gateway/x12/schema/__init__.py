"""Transaction-set definitions: file models, the catalog, compiled forms and overlays."""
