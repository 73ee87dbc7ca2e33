"""Per-session deposit addresses, derived from a merchant's account-level extended public key.

The merchant hands us the xpub of an account m/44'/60'/a' and keeps every private key; session i pays into
m/44'/60'/a'/0/i. The account should be DEDICATED to paygate (for example a' = 1000', which no everyday
wallet opens by itself): the common account 0' is the one a wallet already uses, and an address that held
money before a session was created must never look like the session's payment. UpdatePaymentSettings
checks the first `USED_CHECK_ADDRESSES` addresses on chain and refuses an xpub whose addresses already
hold funds or history unless the merchant confirms it (`allow_used_xpub`). Deriving from the public key alone is what lets the server never hold a secret that
could move the money. bip-utils does the BIP-32/44 maths: hand-rolled secp256k1 derivation is the classic
way to send funds to an address nobody controls.
"""

from __future__ import annotations

from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins, Bip44Levels

from paygate_runtime.errors import InvalidArgument

# A dev-only mnemonic for `paygate up --chain` and the tests. It must NOT be anvil's default
# ("test test ... junk"): those addresses are anvil's pre-funded dev accounts, so every fresh deposit
# address would already hold 10 000 ETH and every session would look paid before anyone paid.
DEV_MNEMONIC = (
    "fiber merry bamboo obtain daring misery vivid chuckle boring sing garbage episode "
    "dutch segment trigger execute void smooth welcome abandon sorry pledge merge luxury"
)

# Non-hardened child indexes only: an xpub cannot derive hardened children.
MAX_ADDRESS_INDEX = 2**31 - 1


# How many of an xpub's first deposit addresses are checked for earlier funds or history.
USED_CHECK_ADDRESSES = 5


def derivation_path(index: int, account: int = 0) -> str:
    """The BIP-44 path a wallet must use to find the key behind deposit address `index`."""
    return f"m/44'/60'/{account}'/0/{index}"


def account_index(xpub: str) -> int:
    """The (hardened) account number a' of an account-level xpub, as a wallet shows it."""
    index: int = _account_node(xpub).Bip32Object().Index().ToInt()  # bip_utils is untyped
    return index - 2**31


def first_addresses(xpub: str, count: int = USED_CHECK_ADDRESSES) -> list[str]:
    """The deposit addresses of the first `count` sessions (indexes 0..count-1)."""
    return [derive_deposit_address(xpub, index) for index in range(count)]


def validate_xpub(xpub: str) -> str:
    """Return the xpub stripped of surrounding whitespace, or raise InvalidArgument(`invalid_xpub`).

    Accepts only a public, account-level (depth 3, hardened index) key: an xprv would mean storing a
    secret, and a key at any other depth would derive addresses at the wrong path, where the merchant's
    wallet would never look.
    """
    _account_node(xpub)
    return xpub.strip()


def derive_deposit_address(xpub: str, index: int) -> str:
    """The EIP-55 checksummed address at m/44'/60'/0'/0/`index` below the account-level `xpub`."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_ADDRESS_INDEX:
        raise InvalidArgument(
            "invalid_address_index",
            f"address index must be an integer from 0 to {MAX_ADDRESS_INDEX}",
            field="address_index",
        )
    account = _account_node(xpub)
    address: str = account.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress()
    return address


def dev_xpub_from_mnemonic(mnemonic: str = DEV_MNEMONIC, passphrase: str = "") -> str:
    """The account-level xpub (m/44'/60'/0') of a BIP-39 mnemonic. For dev stacks and tests only."""
    try:
        seed = Bip39SeedGenerator(mnemonic).Generate(passphrase)
    except ValueError as exc:
        raise InvalidArgument("invalid_mnemonic", f"not a valid BIP-39 mnemonic: {exc}") from exc
    account = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    xpub: str = account.PublicKey().ToExtended()
    return xpub


def _account_node(xpub: str) -> Bip44:
    if not isinstance(xpub, str) or not xpub.strip():
        raise InvalidArgument("invalid_xpub", "xpub is required", field="xpub")
    text = xpub.strip()
    try:
        node = Bip44.FromExtendedKey(text, Bip44Coins.ETHEREUM)
    # bip-utils signals bad input through a dozen unrelated exception classes (base58 checksum, depth,
    # key-net version, point decoding); any of them means the same thing to the merchant.
    except Exception as exc:
        raise InvalidArgument(
            "invalid_xpub", f"not a valid extended public key: {exc}", field="xpub"
        ) from exc
    if not node.IsPublicOnly():
        raise InvalidArgument(
            "invalid_xpub",
            "an extended private key was given; paygate accepts only the account's xpub",
            field="xpub",
        )
    if node.Level() != Bip44Levels.ACCOUNT or not node.Bip32Object().Index().IsHardened():
        raise InvalidArgument(
            "invalid_xpub",
            "the xpub must be the account-level key (m/44'/60'/0'), depth 3",
            field="xpub",
        )
    return node
