from services.sentiment.main import main

main()
