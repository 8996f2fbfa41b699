"""initlab: compare Keras weight initializers across seeds, over HTTP."""
