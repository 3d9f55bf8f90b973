"""The tokens that attention plots label their rows with."""

import numpy as np

from apps.core.generation import teacher_forced_tokens

PAD, UNKNOWN, START, END = 0, 1, 2, 3


def test_rows_end_at_their_end_token_and_keep_unknown_as_one_token():
    tokens = np.array(
        [
            [7, UNKNOWN, 9, END, PAD, PAD],  # one [UNK] is one row of the plot
            [END, PAD, PAD, PAD, PAD, PAD],  # ended at once
            [4, 5, 6, 7, 8, 9],  # hit the length limit: no end token
            [4, 5, PAD, PAD, PAD, PAD],  # padding without an end token
        ]
    )
    rows, decoder_inputs = teacher_forced_tokens(tokens, START, END, PAD)
    assert rows == [[7, UNKNOWN, 9, END], [END], [4, 5, 6, 7, 8, 9], [4, 5]]
    np.testing.assert_array_equal(
        decoder_inputs,
        [
            [START, 7, UNKNOWN, 9, PAD, PAD],
            [START, PAD, PAD, PAD, PAD, PAD],
            [START, 4, 5, 6, 7, 8],
            [START, 4, PAD, PAD, PAD, PAD],
        ],
    )
    assert decoder_inputs.dtype == np.int32


def test_an_empty_batch_gives_no_rows():
    rows, decoder_inputs = teacher_forced_tokens(np.zeros((0, 5), np.int32), START, END, PAD)
    assert rows == [] and decoder_inputs.shape == (0, 0)
