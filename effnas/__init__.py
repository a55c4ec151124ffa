"""effnas: neural architecture search and compound scaling in the style of MnasNet and EfficientNet."""
