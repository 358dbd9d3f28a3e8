"""lwpose.eval"""
