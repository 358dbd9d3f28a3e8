"""lwpose.convert"""
