from __future__ import annotations

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins

from paygate_runtime.errors import InvalidArgument
from session_service.domain.deposit_addresses import (
    DEV_MNEMONIC,
    MAX_ADDRESS_INDEX,
    derivation_path,
    derive_deposit_address,
    dev_xpub_from_mnemonic,
    validate_xpub,
)

# The BIP-39 test mnemonic and its published BIP-44 Ethereum addresses (m/44'/60'/0'/0/0 and /1), as
# shown by MetaMask, Ledger Live and iancoleman.io/bip39 for this mnemonic.
ABANDON_MNEMONIC = "abandon " * 11 + "about"
ABANDON_ADDRESS_0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
ABANDON_ADDRESS_1 = "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_known_vector_index_0_and_1() -> None:
    xpub = dev_xpub_from_mnemonic(ABANDON_MNEMONIC)
    assert xpub.startswith("xpub")
    assert derive_deposit_address(xpub, 0) == ABANDON_ADDRESS_0
    assert derive_deposit_address(xpub, 1) == ABANDON_ADDRESS_1


def test_anvil_mnemonic_vector_matches_anvil_first_dev_account() -> None:
    # Same derivation anvil uses for its pre-funded accounts: a second, independent public vector.
    assert derive_deposit_address(dev_xpub_from_mnemonic(ANVIL_MNEMONIC), 0) == ANVIL_ACCOUNT_0


def test_addresses_are_eip55_checksummed_and_unique_per_index() -> None:
    xpub = dev_xpub_from_mnemonic()
    addresses = [derive_deposit_address(xpub, i) for i in range(20)]
    assert len(set(addresses)) == 20
    for address in addresses:
        assert address.startswith("0x") and len(address) == 42
        assert address != address.lower()  # mixed case = EIP-55 checksum applied


def test_public_derivation_matches_private_derivation() -> None:
    # What the merchant's wallet (holding the seed) derives must equal what the server derives from the xpub.
    seed = Bip39SeedGenerator(DEV_MNEMONIC).Generate()
    wallet = (
        Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0).Change(Bip44Changes.CHAIN_EXT)
    )
    xpub = dev_xpub_from_mnemonic(DEV_MNEMONIC)
    for index in (0, 7, 2**31 - 1):
        assert derive_deposit_address(xpub, index) == wallet.AddressIndex(index).PublicKey().ToAddress()


def test_dev_mnemonic_is_not_anvils_default() -> None:
    dev = dev_xpub_from_mnemonic()
    anvil = dev_xpub_from_mnemonic(ANVIL_MNEMONIC)
    assert DEV_MNEMONIC != ANVIL_MNEMONIC
    anvil_accounts = {derive_deposit_address(anvil, i) for i in range(10)}
    assert not anvil_accounts & {derive_deposit_address(dev, i) for i in range(100)}


def test_validate_xpub_accepts_account_level_xpub_and_strips_whitespace() -> None:
    xpub = dev_xpub_from_mnemonic()
    assert validate_xpub(f"  {xpub}\n") == xpub


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "xpub-not-base58",
        "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATu",
        None,
        12345,
    ],
)
def test_garbage_xpub_is_invalid_xpub(bad: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_xpub(bad)  # type: ignore[arg-type]
    assert err.value.code == "invalid_xpub"


def _abandon_account() -> Bip44:
    seed = Bip39SeedGenerator(ABANDON_MNEMONIC).Generate()
    return Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)


def test_xprv_is_refused_so_no_private_key_is_ever_stored() -> None:
    xprv = _abandon_account().PrivateKey().ToExtended()
    with pytest.raises(InvalidArgument) as err:
        derive_deposit_address(xprv, 0)
    assert err.value.code == "invalid_xpub"
    assert xprv not in err.value.message


@pytest.mark.parametrize("level", ["root", "coin", "change"])
def test_xpub_at_the_wrong_depth_is_refused(level: str) -> None:
    seed = Bip39SeedGenerator(ABANDON_MNEMONIC).Generate()
    root = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
    node = {
        "root": root,
        "coin": root.Purpose().Coin(),
        "change": root.Purpose().Coin().Account(0).Change(Bip44Changes.CHAIN_EXT),
    }[level]
    xpub = node.PublicKey().ToExtended()
    with pytest.raises(InvalidArgument) as err:
        validate_xpub(xpub)
    assert err.value.code == "invalid_xpub"


@pytest.mark.parametrize("index", [-1, MAX_ADDRESS_INDEX + 1, True, 1.0, "3"])
def test_out_of_range_index_is_refused(index: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        derive_deposit_address(dev_xpub_from_mnemonic(), index)  # type: ignore[arg-type]
    assert err.value.code == "invalid_address_index"


def test_invalid_mnemonic_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        dev_xpub_from_mnemonic("abandon abandon abandon")
    assert err.value.code == "invalid_mnemonic"


def test_derivation_path_names_the_bip44_path() -> None:
    assert derivation_path(5) == "m/44'/60'/0'/0/5"
