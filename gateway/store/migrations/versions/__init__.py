"""One module per schema revision; each must keep working unchanged once released."""
