"""Training engines. Modules here other than `plan` import TensorFlow."""
