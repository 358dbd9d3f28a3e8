"""lwpose.train"""
