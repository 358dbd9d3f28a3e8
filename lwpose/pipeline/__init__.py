"""lwpose.pipeline"""
