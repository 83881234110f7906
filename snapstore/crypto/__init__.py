"""Cryptography: password KDF, key files, keyed ids and the authenticated envelope.

Vocabulary:
- master key: random secrets made at `init` (encryption key, id key, chunker seed);
- key file: the master key wrapped under a key derived from a password (several may exist);
- session key: derived from the encryption key and a random session id, used with a
  counter nonce so no nonce is ever reused without any shared state between writers;
- envelope: header + AES-256-GCM ciphertext; every stored object and blob is one.
"""
