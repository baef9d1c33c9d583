"""One module per staging schema revision; each must keep working unchanged once released."""
