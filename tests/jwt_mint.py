"""Mints JWTs with PyJWT for the scoped-token tests (tests/tests/tokens.rs),
so that the server is checked against a library nobody here wrote.

    jwt_mint.py keys DIR
        writes DIR/ed25519.pem, DIR/p256.pem, DIR/p384.pem and their public
        halves DIR/*.pub.pem (private keys PKCS#8, public keys SPKI)
    jwt_mint.py sign ALG KEY_FILE CLAIMS_JSON
        prints a token: HS* signs with KEY_FILE's bytes, one trailing newline
        removed (as diffcopy reads --jwt-secret-file); EdDSA and ES256 with
        the private key in KEY_FILE; "none" signs with nothing.
"""

import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def write_keys(directory):
    for name, key in [("ed25519", ed25519.Ed25519PrivateKey.generate()),
                      ("p256", ec.generate_private_key(ec.SECP256R1())),
                      ("p384", ec.generate_private_key(ec.SECP384R1()))]:
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        with open(os.path.join(directory, name + ".pem"), "wb") as f:
            f.write(private)
        with open(os.path.join(directory, name + ".pub.pem"), "wb") as f:
            f.write(public)


def sign(alg, key_file, claims):
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    with open(key_file, "rb") as f:
        key = f.read()
    if alg.startswith("HS") and key.endswith(b"\n"):
        key = key[:-1]
    return jwt.encode(claims, key, algorithm=alg)


def main():
    if sys.argv[1] == "keys":
        write_keys(sys.argv[2])
    elif sys.argv[1] == "sign":
        print(sign(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
    else:
        sys.exit("usage: jwt_mint.py keys DIR | sign ALG KEY_FILE CLAIMS_JSON")


if __name__ == "__main__":
    main()
