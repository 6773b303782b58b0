"""nn.Modules: the documents' networks and the drop-in fused blocks."""
