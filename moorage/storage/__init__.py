"""Off-site copies (SPEC section 11): where they go and how they are sealed.

- ``keys``: the object keys a target may be asked for (checked before any kind sees one).
- ``encryption``: age (through ``pyrage``) seals every copy before it leaves the host;
  a target holds ciphertext only, and a wrong key, a flipped byte or a cut-off object
  is refused while decrypting.
- ``local``, ``sftp``, ``s3``: the built-in storage kinds, registered under the
  ``moorage.storage`` entry point group like a third-party kind would be; each
  implements ``plugins.spec.StorageKind`` and moves bytes, nothing else.
"""
