# Conversations are deliberately not in the operator's admin: nobody outside a class
# reads its conversations, the operator included.
