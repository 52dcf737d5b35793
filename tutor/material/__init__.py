"""Course material: a teacher's documents for a class, read into passages that ground the
tutor's drafts in that class's own course.

    reading.py   files to text (PDF by pypdf, plain text, Markdown), and the limits
    passages.py  text to passages with their page or section
    search.py    hybrid search (sentence embeddings + BM25) over one class's passages
    services.py  upload, rename, replace, delete, index (the worker's task), retention
    selectors.py who may manage a class's material, what a card cites
    views.py     the teacher's material page
"""
