import TapeCore
