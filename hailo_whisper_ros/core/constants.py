"""Whisper's fixed audio and model dimensions, each derived once (as openai/whisper's audio.py does)."""

SAMPLE_RATE = 16000  # Hz: every model input, VAD and feature works at this rate
N_FFT = 400  # samples of one STFT window (25 ms)
HOP_LENGTH = 160  # samples between feature frames (10 ms)
CHUNK_LENGTH = 30  # seconds of audio in the window Whisper was trained on
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in that window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames: the positional embedding of every Whisper encoder ends there
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames per second
ENCODER_POSITIONS = N_FRAMES // 2  # 1500: the encoder's stride-2 convolution halves the frames
MAX_TEXT_POSITIONS = 448  # Whisper's n_text_ctx for every released size; a model's own figure bounds decoding
