from services.ticker.main import main

main()
